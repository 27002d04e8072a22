// A CloudFront Function (runtime cloudfront-js-2.0) on the viewer request of every behavior of Dify's
// distribution. CloudFront runs this file as it is: plain JavaScript, no modules, `handler` by name.
//
// Dify records and rate-limits by the address that extract_remote_ip (api/libs/helper.py) returns: the
// CF-Connecting-IP header if it is set, else the whole first X-Forwarded-For header as it arrives, else
// the socket peer. CloudFront forwards both headers from the viewer (origin request policy ALL_VIEWER),
// so without this function a viewer chooses the address Dify records. This function:
// - sets cf-connecting-ip to the address CloudFront accepted the connection from, replacing every value
//   the viewer sent (a repeated header included: a fresh object has no multiValue);
// - deletes the viewer's x-forwarded-for. CloudFront adds X-Forwarded-For after viewer-request functions
//   run, appending the viewer's address to whatever the request then carries. Deleted here, it arrives
//   as exactly the viewer's address; set here to the address, it would arrive as "address,address".
//   The load balancer behind CloudFront preserves it unchanged (routing.http.xff_header_processing.mode).
// Neither header is on CloudFront's lists of headers that edge functions may not add or change.

// eslint-disable-next-line @typescript-eslint/no-unused-vars -- CloudFront calls `handler` by name.
function handler(event) {
  const request = event.request;
  const headers = request.headers || (request.headers = {});
  headers['cf-connecting-ip'] = { value: event.viewer.ip };
  delete headers['x-forwarded-for'];
  return request;
}
