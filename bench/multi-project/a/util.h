unsigned long checksum(const char *s);
