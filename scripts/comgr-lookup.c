/*
 * Ask comgr which code object of an offload bundle it would pick for each
 * ISA: amd_comgr_lookup_code_object, the call HIP makes to choose a device's
 * code object. Prints "ISA OFFSET SIZE" per ISA (size 0: nothing found).
 *
 *   comgr-lookup BUNDLE amdgcn-amd-amdhsa--gfx1100 [ISA...]
 *
 * Build: cc -o comgr-lookup comgr-lookup.c -lamd_comgr
 */
#include <amd_comgr/amd_comgr.h>
#include <stdio.h>
#include <stdlib.h>

static void check(amd_comgr_status_t s, const char *what) {
  if (s != AMD_COMGR_STATUS_SUCCESS) {
    const char *msg = "?";
    amd_comgr_status_string(s, &msg);
    fprintf(stderr, "comgr-lookup: %s: %s\n", what, msg);
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: comgr-lookup BUNDLE ISA...\n");
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc(size ? size : 1);
  if (!buf || fread(buf, 1, size, f) != (size_t)size) {
    perror("read");
    return 1;
  }
  fclose(f);
  amd_comgr_data_t data;
  check(amd_comgr_create_data(AMD_COMGR_DATA_KIND_FATBIN, &data), "create_data");
  check(amd_comgr_set_data(data, size, buf), "set_data");
  int n = argc - 2;
  amd_comgr_code_object_info_t *q = calloc(n, sizeof *q);
  for (int i = 0; i < n; i++) q[i].isa = argv[i + 2];
  check(amd_comgr_lookup_code_object(data, q, n), "lookup_code_object");
  for (int i = 0; i < n; i++) printf("%s %llu %llu\n", q[i].isa, (unsigned long long)q[i].offset, (unsigned long long)q[i].size);
  amd_comgr_release_data(data);
  return 0;
}
