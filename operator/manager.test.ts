import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.ts";
import { Manager } from "./manager.ts";

// No API server is needed: nothing here is sent before start().
const access = { server: "https://127.0.0.1:1" };
const logger = pino({ level: "silent" });

describe("Manager", () => {
  it("exports leader_election_master_status 0 from the start, before it leads", async () => {
    const manager = new Manager(loadConfig(["--lease-name", "my-lease"], {}), access, logger);
    const text = await manager.metrics.registry.metrics();
    expect(text).toContain('leader_election_master_status{name="my-lease"} 0');
  });

  it("exports no leader sample when leader election is off: there is no lease", async () => {
    const manager = new Manager(loadConfig(["--leader-election", "false"], {}), access, logger);
    const text = await manager.metrics.registry.metrics();
    expect(text).not.toMatch(/^leader_election_master_status\{/m);
  });
});
