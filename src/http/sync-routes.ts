/**
 * The TaskChampion sync protocol v1 endpoints: thin callers of SyncService. Each handler runs the
 * reference server's checks in its order: path id (404), content type (400), X-Client-Id (400,
 * 403), body (400), then the transaction.
 */
import type { AccessPolicy } from '../access-policy.js';
import { budgetSpent, PROTOCOL_BODY_WEIGHT, type BodyBudget } from './body-budget.js';
import type { ClientId } from '../ids.js';
import type { SyncService } from '../sync/sync-service.js';
import type { SnapshotUrgency } from '../sync/urgency.js';
import type { RequestContext } from './context.js';
import { HttpError } from './http-error.js';
import { readBody, type BodyLimits } from './read-body.js';
import { pathVersionId, requireClientId, requireContentType } from './request-checks.js';
import { send, sendText } from './respond.js';
import type { Route } from './router.js';

export const HISTORY_SEGMENT_TYPE = 'application/vnd.taskchampion.history-segment';
export const SNAPSHOT_TYPE = 'application/vnd.taskchampion.snapshot';

const URGENCY_HEADER: Record<SnapshotUrgency, string | null> = { none: null, low: 'urgency=low', high: 'urgency=high' };

export interface SyncRouteOptions {
  /** The protocol's transactions. */
  readonly sync: SyncService;
  /** Which clients may sync. */
  readonly access: AccessPolicy;
  /** Cap and idle timeout for history segments and snapshots. */
  readonly body: Omit<BodyLimits, 'tooLargeMessage'>;
  /** What all bodies in flight may hold together. */
  readonly bodyBudget: BodyBudget;
}

export function syncRoutes({ sync, access, body, bodyBudget }: SyncRouteOptions): Route<RequestContext>[] {
  const identify = (ctx: RequestContext): ClientId => (ctx.clientId = requireClientId(ctx.req, access));

  // An answer's bytes stay in memory until the client has taken them, which a client that stops
  // reading never does: they count against the budget too, until the response closes.
  const holdAnswer = (ctx: RequestContext, bytes: Uint8Array): void => {
    if (!bodyBudget.holderFor(ctx.res, 1).take(bytes.byteLength)) throw budgetSpent();
  };

  const readSegment = async (ctx: RequestContext, tooLargeMessage: string, emptyMessage: string): Promise<Uint8Array> => {
    const bytes = await readBody(ctx.req, ctx.res, { ...body, tooLargeMessage }, bodyBudget.holderFor(ctx.res, PROTOCOL_BODY_WEIGHT));
    if (bytes.byteLength === 0) throw new HttpError(400, emptyMessage);
    return bytes;
  };

  return [
    {
      template: '/v1/client/add-version/{parentVersionId}',
      methods: {
        POST: async (ctx) => {
          const parent = pathVersionId(ctx.param);
          requireContentType(ctx.req, HISTORY_SEGMENT_TYPE);
          const clientId = identify(ctx);
          const segment = await readSegment(ctx, 'overflow', 'Empty body');
          const result = await sync.addVersion(clientId, parent, segment);
          if (result.kind === 'conflict') {
            send(ctx.res, 409, { 'X-Parent-Version-Id': result.expectedParentVersionId });
            return;
          }
          const urgency = URGENCY_HEADER[result.snapshotUrgency];
          send(ctx.res, 200, {
            'X-Version-Id': result.version.versionId,
            ...(urgency === null ? {} : { 'X-Snapshot-Request': urgency }),
          });
        },
      },
    },
    {
      template: '/v1/client/get-child-version/{parentVersionId}',
      methods: {
        GET: async (ctx) => {
          const parent = pathVersionId(ctx.param);
          const result = await sync.getChildVersion(identify(ctx), parent);
          if (result.kind === 'not-found') return sendText(ctx.res, 404, 'no such version');
          if (result.kind === 'gone') return sendText(ctx.res, 410, 'version has been deleted');
          const { version } = result;
          holdAnswer(ctx, version.historySegment);
          send(
            ctx.res,
            200,
            {
              'Content-Type': HISTORY_SEGMENT_TYPE,
              'X-Version-Id': version.versionId,
              'X-Parent-Version-Id': version.parentVersionId,
            },
            version.historySegment,
          );
        },
      },
    },
    {
      template: '/v1/client/add-snapshot/{versionId}',
      methods: {
        POST: async (ctx) => {
          const versionId = pathVersionId(ctx.param);
          requireContentType(ctx.req, SNAPSHOT_TYPE);
          const clientId = identify(ctx);
          const data = await readSegment(ctx, 'Snapshot over maximum allowed size', 'No snapshot supplied');
          const result = await sync.addSnapshot(clientId, versionId, data);
          // An ignored snapshot is still a success: the client would otherwise fail a sync whose
          // version was already accepted. Only an unknown client is refused, as the reference does.
          if (result.kind === 'ignored' && result.reason === 'no-such-client') return sendText(ctx.res, 404, 'no such client');
          ctx.note = result.kind === 'ignored' ? `snapshot ignored: ${result.reason}` : 'snapshot stored';
          send(ctx.res, 200);
        },
      },
    },
    {
      template: '/v1/client/snapshot',
      methods: {
        GET: async (ctx) => {
          const snapshot = await sync.getSnapshot(identify(ctx));
          if (snapshot === null) return sendText(ctx.res, 404, 'no snapshot');
          holdAnswer(ctx, snapshot.data);
          send(ctx.res, 200, { 'Content-Type': SNAPSHOT_TYPE, 'X-Version-Id': snapshot.versionId }, snapshot.data);
        },
      },
    },
  ];
}
