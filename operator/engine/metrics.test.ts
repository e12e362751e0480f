import { describe, expect, it } from "vitest";
import { createMetrics, queueObserver } from "./metrics.ts";

describe("queueObserver", () => {
  it("exposes the queue's series from the start, before any key waited", async () => {
    const metrics = createMetrics();
    queueObserver(metrics, "agenttype");
    const text = await metrics.registry.metrics();
    expect(text).toContain('workqueue_depth{name="agenttype"} 0');
    expect(text).toContain('workqueue_adds_total{name="agenttype"} 0');
    expect(text).toContain('workqueue_retries_total{name="agenttype"} 0');
  });
});
