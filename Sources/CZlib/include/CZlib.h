// zlib (Debian `zlib1g-dev`): deflate and inflate for PNG images.
#include <zlib.h>
