import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["operator/**/*.test.ts", "sidecar/**/*.test.ts", "wrapper/**/*.test.ts"],
        },
      },
    ],
  },
});
