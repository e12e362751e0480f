// The cri-api release the containerd driver speaks, and its hash: what cri-proto-fetch.ts
// fetches and checks, and where the driver looks for its api.proto. Apart from the fetch
// script, so that the operator's bundle does not take in a command-line program.
/** The cri-api release the driver speaks: Kubernetes' minor, as tests/cluster/lib.sh pins (v1.34.x). */
export const CRI_API_VERSION = "v0.34.4";
/** go.sum's hash of the module at CRI_API_VERSION (`go mod download -json`'s Sum); change the two together. */
export const CRI_API_SUM = "h1:YIiP2h3cehobdnjig19IdKgXJGzeTK2j9VSwH+tfhz4=";
