"""`convert engine`: generated C for the int8 model, bit-exact with TFLM, that keeps the equivariant
weight sharing in flash (circulant / rot90-orbit / tied storage) and streams inverted-residual
blocks row by row in RAM. Modules: quant (TFLM's integer parameters), plan (graph → stages),
storage (structure detection), memory (arena plan), emit (C source), report."""
