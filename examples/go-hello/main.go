package main

import (
	"fmt"
	"runtime"
)

func main() {
	fmt.Printf("hello from Go %s, built by kiln\n", runtime.Version())
}
