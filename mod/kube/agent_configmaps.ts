/**
 * The two ConfigMaps the agent itself reads: the cluster config `kubeedge/edgemesh-agent-cfg`
 * (key `edgemesh-agent.yaml`) and the health vote settings `edge-health-config`. Getters and
 * change events only; validation and writing the config file belong to config sync.
 */

import type { StoreReader } from "./store.ts";
import type { ConfigMap } from "./types.ts";

export interface AgentConfigMapsOptions {
  /** Default "kubeedge". */
  agentConfigNamespace?: string;
  /** Default "edgemesh-agent-cfg". */
  agentConfigName?: string;
  /** Default "edgemesh-agent.yaml". */
  agentConfigKey?: string;
  /** Default "kube-system" (as `edgemesh admission --namespace`). */
  healthConfigNamespace?: string;
  /** Default "edge-health-config". */
  healthConfigName?: string;
}

export interface HealthConfig {
  /** `unit-internal-check` is "true". */
  unitInternalCheck: boolean;
  /** `check-units`, comma-separated. */
  checkUnits: string[];
  /** Every key, as stored. */
  data: Readonly<Record<string, string>>;
}

export interface AgentConfigMapEvents {
  /** The YAML text, or undefined when the ConfigMap or key went away. */
  "agent-config": string | undefined;
  "health-config": HealthConfig | undefined;
}

type Listener<T> = (value: T) => void;

export class AgentConfigMaps {
  readonly #store: StoreReader;
  readonly #o: Required<AgentConfigMapsOptions>;
  readonly #listeners: {
    [E in keyof AgentConfigMapEvents]: Set<Listener<AgentConfigMapEvents[E]>>;
  } = {
    "agent-config": new Set(),
    "health-config": new Set(),
  };
  #agent: string | undefined;
  #health: string | undefined;
  #off: () => void;

  constructor(store: StoreReader, options: AgentConfigMapsOptions = {}) {
    this.#store = store;
    this.#o = {
      agentConfigNamespace: options.agentConfigNamespace ?? "kubeedge",
      agentConfigName: options.agentConfigName ?? "edgemesh-agent-cfg",
      agentConfigKey: options.agentConfigKey ?? "edgemesh-agent.yaml",
      healthConfigNamespace: options.healthConfigNamespace ?? "kube-system",
      healthConfigName: options.healthConfigName ?? "edge-health-config",
    };
    this.#agent = this.agentConfig();
    this.#health = JSON.stringify(this.healthConfig());
    this.#off = store.on("configmaps:update", (c) => {
      const m = c.object.metadata;
      if (m.namespace === this.#o.agentConfigNamespace && m.name === this.#o.agentConfigName) {
        this.#checkAgent();
      }
      if (m.namespace === this.#o.healthConfigNamespace && m.name === this.#o.healthConfigName) {
        this.#checkHealth();
      }
    });
  }

  #get(namespace: string, name: string): ConfigMap | undefined {
    return this.#store.get("configmaps", namespace, name);
  }

  /** The `edgemesh-agent.yaml` text of the cluster config, if present. */
  agentConfig(): string | undefined {
    return this.#get(this.#o.agentConfigNamespace, this.#o.agentConfigName)?.data
      ?.[this.#o.agentConfigKey];
  }

  healthConfig(): HealthConfig | undefined {
    const cm = this.#get(this.#o.healthConfigNamespace, this.#o.healthConfigName);
    if (!cm) return undefined;
    const data = cm.data ?? {};
    return {
      unitInternalCheck: data["unit-internal-check"]?.trim().toLowerCase() === "true",
      checkUnits: (data["check-units"] ?? "").split(",").map((s) => s.trim()).filter((s) =>
        s.length > 0
      ),
      data,
    };
  }

  on<E extends keyof AgentConfigMapEvents>(
    event: E,
    listener: Listener<AgentConfigMapEvents[E]>,
  ): () => void {
    const set = this.#listeners[event] as Set<Listener<AgentConfigMapEvents[E]>>;
    set.add(listener);
    return () => set.delete(listener);
  }

  #checkAgent(): void {
    const now = this.agentConfig();
    if (now === this.#agent) return;
    this.#agent = now;
    for (const l of [...this.#listeners["agent-config"]]) l(now);
  }

  #checkHealth(): void {
    const cfg = this.healthConfig();
    const key = JSON.stringify(cfg);
    if (key === this.#health) return;
    this.#health = key;
    for (const l of [...this.#listeners["health-config"]]) l(cfg);
  }

  /** Stops listening to the store. */
  close(): void {
    this.#off();
  }
}
