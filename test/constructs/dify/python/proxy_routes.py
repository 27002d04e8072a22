"""Which proxy httpx picks for each URL, under one container's exact environment.

Reads JSON on stdin: {"environment": {...}, "urls": [...]}. Writes JSON on stdout:
{"ssrf": {url: proxy-or-null}, "default": {url: proxy-or-null}}.

- "ssrf" is Dify's SSRF-protected client, built the way the pinned release's
  api/core/helper/ssrf_proxy.py builds it: SSRF_PROXY_ALL_URL if set (`proxy=`), else the two
  per-scheme proxies as mounts (with the environment still trusted), else no proxy.
- "default" is a plain httpx.Client(), trust_env on: what any other httpx caller in the image does.

Routing is httpx's own (`Client._transport_for_url`), so the answer is the library's, not ours.
The process environment is replaced by the container's before httpx reads it.
"""
import json
import os
import sys

request = json.load(sys.stdin)
os.environ.clear()
os.environ.update(request["environment"])

import httpx  # noqa: E402  (after the environment is in place)


def proxy_kwarg(url):
    # httpx 0.26 renamed `proxies=` to `proxy=`; Debian's python3-httpx may be older.
    try:
        httpx.Client(proxy=url).close()
        return {"proxy": url}
    except TypeError:
        return {"proxies": url}


def transport(url):
    # Newer httpx takes the URL itself; 0.23 wants an httpx.Proxy.
    try:
        return httpx.HTTPTransport(proxy=httpx.Proxy(url))
    except (TypeError, AttributeError):
        return httpx.HTTPTransport(proxy=url)


def ssrf_client():
    env = os.environ
    if env.get("SSRF_PROXY_ALL_URL"):
        return httpx.Client(**proxy_kwarg(env["SSRF_PROXY_ALL_URL"]))
    if env.get("SSRF_PROXY_HTTP_URL") and env.get("SSRF_PROXY_HTTPS_URL"):
        mounts = {
            "http://": transport(env["SSRF_PROXY_HTTP_URL"]),
            "https://": transport(env["SSRF_PROXY_HTTPS_URL"]),
        }
        return httpx.Client(mounts=mounts)
    return httpx.Client()


def proxy_of(client, url):
    chosen = client._transport_for_url(httpx.URL(url))
    pool = getattr(chosen, "_pool", None)
    proxy_url = getattr(pool, "_proxy_url", None)
    if proxy_url is None:
        return None
    # httpcore keeps the proxy as its own URL type, with bytes parts.
    as_text = lambda part: part.decode() if isinstance(part, bytes) else str(part)
    return f"{as_text(proxy_url.scheme)}://{as_text(proxy_url.host)}:{proxy_url.port}"


ssrf = ssrf_client()
default = httpx.Client()
print(
    json.dumps(
        {
            "ssrf": {url: proxy_of(ssrf, url) for url in request["urls"]},
            "default": {url: proxy_of(default, url) for url in request["urls"]},
            "httpx": httpx.__version__,
        }
    )
)
