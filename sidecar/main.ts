// Entry point of the sidecar container: `node sidecar/main.ts [--config PATH] [--debug]`.
// Exits non-zero with the offending fields named when the config is bad.
import { parseArgs } from "node:util";
import { pino } from "pino";
import { SIDECAR_CONFIG_PATH } from "../api/sidecarconfig.ts";
import { Sidecar } from "./server.ts";

const { values } = parseArgs({
  options: {
    config: { type: "string", default: process.env.AGENTTYPE_SIDECAR_CONFIG ?? SIDECAR_CONFIG_PATH },
    debug: { type: "boolean", default: process.env.AGENTTYPE_SIDECAR_DEBUG === "true" },
  },
});

const logger = pino({ level: values.debug ? "debug" : "info" });
let sidecar: Sidecar;
try {
  sidecar = await Sidecar.start({ configPath: values.config, logger, debug: values.debug });
} catch (error) {
  logger.fatal((error as Error).message);
  process.exit(1);
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    logger.info({ signal }, "shutting down");
    void sidecar.close().then(() => process.exit(0));
  });
}
