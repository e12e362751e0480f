// The media type of an image the agent sent as bare base64, told apart by its first bytes:
// Ollama's images carry none, and Converse, OpenAI and Anthropic each want one.

export type ImageMediaType = "image/png" | "image/jpeg" | "image/gif" | "image/webp";

export function imageMediaType(base64: string): ImageMediaType | undefined {
  const head = Buffer.from(base64.slice(0, 24), "base64");
  if (head.subarray(0, 4).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47]))) return "image/png";
  if (head.subarray(0, 3).equals(Buffer.from([0xff, 0xd8, 0xff]))) return "image/jpeg";
  if (head.subarray(0, 4).toString("latin1") === "GIF8") return "image/gif";
  if (head.subarray(0, 4).toString("latin1") === "RIFF" && head.subarray(8, 12).toString("latin1") === "WEBP")
    return "image/webp";
  return undefined;
}
