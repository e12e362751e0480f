// Tiny images for vision tests, base64 as the agents send them.

/** A 1x1 PNG. */
export const PNG =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

/** A 1x1 GIF. */
export const GIF = "R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";

/** The start of a BMP, a format Converse does not take. */
export const BMP = Buffer.from("BM\x3a\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00", "latin1").toString(
  "base64",
);
