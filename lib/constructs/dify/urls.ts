import type { UrlSurface } from '../url-surface';

/**
 * Dify's URL surface, as the pinned release's own nginx routes it (docker/nginx/conf.d/default.conf.template):
 * the paths its api and plugin daemon answer, what may never be cached, and which requests carry
 * large bodies. The edge receives these as props and knows nothing about Dify.
 */

/** Paths Dify's nginx sends to the api. */
export const API_ROUTES = ['/console/api/*', '/api/*', '/v1/*', '/files/*', '/mcp/*', '/triggers/*'] as const;

/** Paths Dify's nginx sends to the plugin daemon (plugin endpoints); everything else goes to web. */
export const PLUGIN_ROUTES = ['/e/*'] as const;

/** Paths answered dynamically: never cached, every method allowed. */
export const UNCACHED_PATHS = [...API_ROUTES, ...PLUGIN_ROUTES] as const;

/** Next.js's content-hashed static assets: the one path a CDN may cache. */
export const STATIC_ASSET_PATH = '/_next/static/*';

/**
 * Request paths (regular expressions) whose bodies are large by design, so the common rule set's 8 KB
 * body limit (SizeRestrictions_BODY) must not apply to them. Every other path keeps the limit. Dify
 * itself enforces UPLOAD_FILE_SIZE_LIMIT on uploads.
 */
export const LARGE_BODY_PATHS = [
  // File uploads: console, web apps and the service API.
  '^/(console/api|api|v1)/files/upload$',
  // Plugin packages and bundles.
  '^/console/api/workspaces/current/plugin/upload/(pkg|bundle)$',
  // DSL (app definition) imports, and workflow drafts, which carry the whole graph.
  '^/console/api/apps/imports$',
  '^/console/api/apps/[0-9a-f-]{36}/workflows/draft$',
  // Knowledge documents created or updated from text through the service API.
  '^/v1/datasets/[0-9a-f-]{36}/(document/create[-_]by[-_]text|documents/[0-9a-f-]{36}/update[-_]by[-_]text)$',
  // Prompts: chat, completion and workflow runs carry user input that often exceeds 8 KB.
  '^/(console/api/apps/[0-9a-f-]{36}|api|v1)/(chat-messages|completion-messages|workflows/run)$',
] as const;

/** Dify's URL surface, as the edge takes it. */
export const DIFY_URL_SURFACE: UrlSurface = {
  uncachedPaths: UNCACHED_PATHS,
  staticAssetPath: STATIC_ASSET_PATH,
  largeBodyPaths: LARGE_BODY_PATHS,
};
