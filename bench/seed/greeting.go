package main

// greeting is the file the one-file-change benchmark edits.
func greeting() string {
	return "hello from kiln's seed benchmark"
}
