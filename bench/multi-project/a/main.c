#include <stdio.h>
#include "util.h"

int main(void) {
	const char *name = "project a";
	printf("%s: %lx\n", name, checksum(name));
	return 0;
}
