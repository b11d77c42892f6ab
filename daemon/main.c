/* PLACEHOLDER: the daemon entry point comes with the network front end. */
#include <stdio.h>
int main(void) { fputs("variantd: not built yet\n", stderr); return 1; }
