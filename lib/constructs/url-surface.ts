/**
 * What the front door needs to know of the application behind it: which paths are dynamic, which may
 * be cached, and which carry large request bodies. The application supplies it (dify/urls.ts); the
 * edge, CloudFront and the web ACL know nothing else about it.
 */
export interface UrlSurface {
  /** Never cached by a CDN; every method allowed. */
  readonly uncachedPaths: readonly string[];
  /** The one path pattern a CDN may cache (immutable, content-hashed assets). */
  readonly staticAssetPath: string;
  /**
   * Request paths (regular expressions) whose bodies are large by design, so the common rule set's
   * 8 KB body limit (SizeRestrictions_BODY) does not apply to them; every other path keeps it.
   */
  readonly largeBodyPaths: readonly string[];
}
