/** The HTTP transport: the sync protocol v1, health, metrics and the GraphQL mount on node:http. */
export { BodyBudget, DEFAULT_BODY_BUDGET_BYTES } from './body-budget.js';
export { ConditionLog } from './condition-log.js';
export { dataDirHealth, DEFAULT_DISK_RESERVE_BYTES, type DataDirHealthOptions, type HealthCheck, type HealthResult } from './health-probe.js';
export { createRequestHandler, type RequestHandlerOptions } from './request-handler.js';
export { CACHE_CONTROL } from './respond.js';
export { HttpServer, type HttpServerOptions, type ListenAddress } from './http-server.js';
export { ServerMetrics, type ServerMetricsOptions } from './metrics.js';
export { instrumentStorage } from './storage-metrics.js';
export { HISTORY_SEGMENT_TYPE, SNAPSHOT_TYPE } from './sync-routes.js';
export type { GraphqlHandler } from './service-routes.js';
