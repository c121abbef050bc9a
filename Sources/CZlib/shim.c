// The CZlib target only exposes <zlib.h> to Swift; this file gives SwiftPM a C source to build.
#include "CZlib.h"
