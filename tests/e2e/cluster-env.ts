// What the e2e globalSetup (global-setup.ts) hands the tests, through the environment.

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through the e2e globalSetup`);
  return v;
}

/** The full tier's admin kubeconfig and the directory of kubectl, helm and friends. */
export function e2eCluster(): { kubeconfig: string; bin: string } {
  return { kubeconfig: required("AGENTTYPE_KUBECONFIG"), bin: required("AGENTTYPE_BIN") };
}
