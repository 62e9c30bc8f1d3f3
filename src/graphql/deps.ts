/** What the GraphQL layer is built from: the same storage, sync logic and access rules as HTTP. */
import type { AccessPolicy } from '../access-policy.js';
import type { BodyBudget } from '../http/body-budget.js';
import type { Storage } from '../storage/storage.js';
import type { SyncService } from '../sync/sync-service.js';
import type { GraphqlLogger } from './logger.js';

export interface GraphqlDeps {
  readonly storage: Storage;
  /** The one implementation of the protocol's transactions, shared with the HTTP transport. */
  readonly sync: SyncService;
  readonly access: AccessPolicy;
  /** Receives faults that are masked from callers. @default stderrLogger (JSON lines on stderr) */
  readonly logger?: GraphqlLogger;
  /** What request bodies may hold in memory together, shared with the HTTP transport. @default none */
  readonly bodyBudget?: BodyBudget;
}
