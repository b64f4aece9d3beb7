#include <stdio.h>
#include "block/bdev.h"
int main(void) { return 0; }
