#include <stdio.h>
#include "util.h"

int main(void) {
	const char *name = "project b";
	printf("%s: %lx\n", name, checksum(name));
	return 0;
}
