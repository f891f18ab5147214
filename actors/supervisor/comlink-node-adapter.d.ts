// comlink ships its Node adapter without a declaration beside the .mjs file; this names its type.
declare module 'comlink/dist/esm/node-adapter.mjs' {
  import type { Endpoint } from 'comlink';
  interface NodeEndpoint {
    postMessage(message: any, transfer?: any): void;
    on(type: any, listener: (...args: any[]) => void): unknown;
    off(type: any, listener: (...args: any[]) => void): unknown;
    start?: () => void;
  }
  export default function nodeEndpoint(endpoint: NodeEndpoint): Endpoint;
}
