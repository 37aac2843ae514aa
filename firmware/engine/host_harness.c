/* Runs the generated engine on N images: harness IN OUT [TRACE] reads N*E2M_INPUT_BYTES int8 bytes
 * from IN and writes N*E2M_OUTPUT_BYTES to OUT; built with -DE2M_TRACE and given TRACE, it also
 * writes every block output and the pooled vector of each image there. The arena is malloc'd at exactly E2M_ARENA_BYTES so that
 * AddressSanitizer sees any access outside the memory plan. */
#include <stdio.h>
#include <stdlib.h>

#include "e2m_model.h"

#ifdef E2M_TRACE
static FILE *trace_file; /* NULL: traced data is dropped */
void e2m_trace(const int8_t *data, size_t len) {
  if (trace_file != NULL) fwrite(data, 1, len, trace_file);
}
#endif

int main(int argc, char **argv) {
  FILE *in, *out;
  int8_t image[E2M_INPUT_BYTES], result[E2M_OUTPUT_BYTES];
  uint8_t *arena;
  long n = 0;
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: %s IN OUT [TRACE]\n", argv[0]);
    return 2;
  }
#ifdef E2M_TRACE
  if (argc == 4 && (trace_file = fopen(argv[3], "wb")) == NULL) return 2;
#endif
  in = fopen(argv[1], "rb");
  out = fopen(argv[2], "wb");
  arena = (uint8_t *)malloc(E2M_ARENA_BYTES);
  if (in == NULL || out == NULL || arena == NULL) {
    fprintf(stderr, "cannot open files or allocate the arena\n");
    return 2;
  }
  while (fread(image, 1, sizeof image, in) == sizeof image) {
    int rc = e2m_invoke(image, result, arena);
    if (rc != 0) {
      fprintf(stderr, "e2m_invoke returned %d\n", rc);
      return 1;
    }
    fwrite(result, 1, sizeof result, out);
    ++n;
  }
  free(arena);
  fclose(in);
#ifdef E2M_TRACE
  if (trace_file != NULL && fclose(trace_file) != 0) return 2;
#endif
  if (fclose(out) != 0) return 2;
  printf("%ld images\n", n);
  return 0;
}
