#include "util.h"

/* FNV-1a over a C string. */
unsigned long checksum(const char *s) {
	unsigned long h = 14695981039346656037UL;
	while (*s) { h ^= (unsigned char)*s++; h *= 1099511628211UL; }
	return h;
}
