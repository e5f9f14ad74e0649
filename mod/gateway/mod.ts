/**
 * The ingress gateway: Istio-style Gateways and VirtualServices (networking.istio.io
 * v1beta1/v1alpha3) expose cluster services to clients outside the cluster. HTTP/1.1 with
 * keep-alive, WebSocket upgrade and streaming bodies; HTTPS with Secret-backed certificates
 * (reloaded on change) and MUTUAL client verification; TCP; TLS passthrough by SNI.
 * Destinations resolve through the service catalog; endpoints on other nodes go through the
 * Dialer. Load balancing is delegated through `PickerFactory` (mod/lb in production).
 * @module
 */
export { type GatewayDeps, type GatewayOptions, GatewayService } from "./service.ts";
export {
  type EndpointPicker,
  type GatewayEndpoint,
  lbPickers,
  type PickContext,
  type PickedEndpoint,
  type PickerFactory,
  roundRobinPickers,
} from "./picker.ts";
export { BindError, CredentialError, HttpParseError, VirtualServiceError } from "./errors.ts";
export { parseVirtualService } from "./parse_virtual_service.ts";
export type { ServerKind, VirtualServiceModel } from "./model.ts";
