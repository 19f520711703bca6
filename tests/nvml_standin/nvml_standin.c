/*
 * A stand-in for NVIDIA's management library (libnvidia-ml.so.1), for the tests of measured
 * GPU energy on a machine without a GPU. It exports the C functions, with NVML's signatures and
 * return codes, that the nvidia-ml-py binding (pynvml) calls on the path Inferplane takes:
 * initialise, count the GPUs, take a GPU's handle, read its total-energy counter, shut down,
 * and name an error code.
 *
 * The "GPUs" are the lines of the file named by INFERPLANE_NVML_STANDIN_FILE: line i holds
 * GPU i's energy since the driver loaded, in millijoules, which the stand-in engine
 * (tests/engine_standin.py --energy-file) advances as it generates tokens and as time passes.
 * Without the variable there is no GPU (count 0); an unreadable line reads as a counter the
 * GPU does not support. It stands in for the driver; it is not the thing under test.
 */
#include <stdio.h>
#include <stdlib.h>

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st { unsigned int index; } *nvmlDevice_t;

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_UNKNOWN = 999,
};

#define MAX_GPUS 16

static struct nvmlDevice_st devices[MAX_GPUS];
static int initialised;  /* nvmlInit calls not yet matched by nvmlShutdown */

/* GPU `index`'s line of the counter file into *mj: 1 where it was read. */
static int read_counter(unsigned int index, unsigned long long *mj) {
    const char *path = getenv("INFERPLANE_NVML_STANDIN_FILE");
    FILE *f;
    char line[64];
    unsigned int i = 0;
    int found = 0;
    if (path == NULL || (f = fopen(path, "r")) == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (i++ == index) {
            char *end;
            *mj = strtoull(line, &end, 10);
            found = end != line;
            break;
        }
    }
    fclose(f);
    return found;
}

static unsigned int gpu_count(void) {
    unsigned long long ignored;
    unsigned int n = 0;
    while (n < MAX_GPUS && read_counter(n, &ignored))
        n++;
    return n;
}

nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    initialised++;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
nvmlReturn_t nvmlInit(void) { return nvmlInitWithFlags(0); }

nvmlReturn_t nvmlShutdown(void) {
    if (initialised == 0)
        return NVML_ERROR_UNINITIALIZED;
    initialised--;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    if (initialised == 0)
        return NVML_ERROR_UNINITIALIZED;
    if (count == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *count = gpu_count();
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    if (initialised == 0)
        return NVML_ERROR_UNINITIALIZED;
    if (device == NULL || index >= gpu_count())
        return NVML_ERROR_INVALID_ARGUMENT;
    devices[index].index = index;
    *device = &devices[index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device,
                                                 unsigned long long *energy) {
    if (initialised == 0)
        return NVML_ERROR_UNINITIALIZED;
    if (device == NULL || energy == NULL || device < devices || device >= devices + MAX_GPUS)
        return NVML_ERROR_INVALID_ARGUMENT;
    return read_counter(device->index, energy) ? NVML_SUCCESS : NVML_ERROR_NOT_SUPPORTED;
}

const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    default: return "Unknown Error";
    }
}
