// Entry point of the operator: `node operator/main.ts [--flag value ...]` (`--help` lists the
// flags). Runs until SIGTERM or SIGINT, then cancels the reconciles in flight, waits for them
// to return and releases the leader lease.
import { pino } from "pino";
import { helpText, loadConfig, wantsHelp } from "./config.ts";
import { loadAccess } from "./kube/access.ts";
import { Manager } from "./manager.ts";

if (wantsHelp(process.argv.slice(2))) {
  process.stdout.write(helpText());
  process.exit(0);
}
let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig(process.argv.slice(2), process.env);
} catch (error) {
  console.error((error as Error).message);
  process.exit(2);
}
const logger = pino({ level: config.logLevel, base: { component: "agenttype-operator" } });
let access: ReturnType<typeof loadAccess>;
try {
  access = loadAccess();
} catch (error) {
  logger.fatal({ err: (error as Error).message }, "cannot reach Kubernetes");
  process.exit(2);
}
const manager = new Manager(config, access, logger);

// Within a Deployment's default grace period (30 s): a reconcile that does not return once
// cancelled must not keep the process until the kubelet kills it without a word.
const SHUTDOWN_DEADLINE_MS = 25_000;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    logger.info({ signal }, "shutting down: cancelling and finishing reconciles in flight");
    setTimeout(() => {
      logger.error(
        { deadlineMs: SHUTDOWN_DEADLINE_MS },
        "shutdown did not finish in time: exiting with work still in flight",
      );
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    void manager.stop().then(() => process.exit(0));
  });
}
manager.start().catch((error: unknown) => {
  logger.fatal({ err: (error as Error).message }, "operator failed to start");
  process.exit(1);
});
