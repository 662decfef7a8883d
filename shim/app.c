/* The glue between the shim and one app: compiled per app against the header wasm2c
 * generated for it (module name "app"), with the shim's flags. */
#include "wasm-rt-config.h"
#include "wasm-app.h"
#include "shim.h"

static Z_app_instance_t app_instance;

void app_run(void)
{
    Z_app_init_module();
    Z_app_instantiate(&app_instance, 0);  /* the imports need no context: one instance */
    Z_appZ__start(&app_instance);
}
