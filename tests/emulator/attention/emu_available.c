#include <stdbool.h>
bool emu_backend_cuda_available(void) { return true; }
