"""`convert edgetpu`: does the int8 model map to the Edge TPU, op by op; and, where Coral's compiler is
installed, compile it and emit it as a C array for the Dev Board Micro sketch. Modules: rules
(Coral's op table and limits), check (the per-op verdict), compiler (edgetpu_compiler and its log),
sources (model_edgetpu_data.{h,cc}), command (the command and its report entry)."""
