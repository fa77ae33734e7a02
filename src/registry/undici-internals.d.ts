// Types for the undici files undici-lite imports one by one (undici 6 has no exports map, so
// the paths resolve; its typings cover only the package's index).
declare module 'undici/lib/dispatcher/dispatcher.js' {
  const Dispatcher: typeof import('undici').Dispatcher;
  export = Dispatcher;
}
declare module 'undici/lib/dispatcher/agent.js' {
  const Agent: typeof import('undici').Agent;
  export = Agent;
}
declare module 'undici/lib/api/index.js' {
  const api: Record<string, unknown>;
  export = api;
}
declare module 'undici/lib/dispatcher/proxy-agent.js' {
  const ProxyAgent: typeof import('undici').ProxyAgent;
  export = ProxyAgent;
}
