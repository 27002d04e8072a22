// undici's internal modules that http-client.ts loads directly; their public types come from 'undici'.
declare module 'undici/lib/dispatcher/agent' {
  const Agent: unknown;
  export default Agent;
}
declare module 'undici/lib/dispatcher/dispatcher' {
  const Dispatcher: { prototype: object };
  export default Dispatcher;
}
declare module 'undici/lib/api/api-request' {
  const request: unknown;
  export default request;
}
declare module 'undici/lib/core/connect' {
  const buildConnector: unknown;
  export default buildConnector;
}
