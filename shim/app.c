/* The glue between the shim and one app: compiled per app against the header wasm2c
 * generated for it (module name "app"), with the shim's flags.
 *
 * An app linked with native modules (app.json "native", tools/lib/native.ts) is two wasm2c
 * modules linked at C level: "native" (SQLite, lwIP, ... linked into one wasm module)
 * defines the one linear memory and the functions Z_nativeZ_* the app imports; the app
 * defines the callbacks the native C imports (Z_appZ_morgana_vfs_*, Z_appZ_morgana_lwip_*),
 * and imports the native memory as env.memory. The image build then defines
 *   MORGANA_NATIVE      1
 *   APP_MEMORY_PAGES    the app's declared minimum for env.memory
 *   APP_INSTANTIATE_ARGS the arguments after the instance, in Z_app_instantiate's order
 *                       (from wasm-app.h; e.g. "0, &native_instance, 0")
 */
#include "wasm-rt-config.h"
#include "wasm-app.h"
#include "shim.h"

static Z_app_instance_t app_instance;

#ifdef MORGANA_NATIVE
#include "wasm-native.h"

static Z_native_instance_t native_instance;

/* The app's imported memory is the native module's (shim/wasm_rt.c allocates it once). */
wasm_rt_memory_t *Z_envZ_memory(struct Z_env_instance_t *env)
{
    (void)env;
    return Z_nativeZ_memory(&native_instance);
}

void app_run(void)
{
    Z_native_init_module();
    Z_native_instantiate(&native_instance, (struct Z_app_instance_t *)&app_instance);
    /* The app's data lies above the native module's: grow the memory to what the app declares. */
    wasm_rt_memory_t *mem = Z_nativeZ_memory(&native_instance);
    if (mem->pages < APP_MEMORY_PAGES &&
        wasm_rt_grow_memory(mem, APP_MEMORY_PAGES - mem->pages) == UINT32_MAX)
        shim_fatal("growing the shared wasm memory for the app's data", -12);
    Z_app_init_module();
    Z_app_instantiate(&app_instance, APP_INSTANTIATE_ARGS);
    Z_appZ__start(&app_instance);
}
#else
void app_run(void)
{
    Z_app_init_module();
    Z_app_instantiate(&app_instance, 0); /* the imports need no context: one instance */
    Z_appZ__start(&app_instance);
}
#endif
