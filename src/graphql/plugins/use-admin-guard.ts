/**
 * Admin operations (listing, deleting, lifting tombstones) need the admin token. The whole
 * operation is refused before any field runs, so a mutation that also selects an admin field
 * has no side effect, and the answer is FORBIDDEN with `data: null`.
 */
import { getOperationAST, Kind, type DocumentNode, type SelectionSetNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { GraphqlContext } from '../context.js';
import { userError } from '../errors.js';

/** Root fields that need the admin token, by operation type. */
const ADMIN_FIELDS: Readonly<Record<string, ReadonlySet<string>>> = Object.freeze({
  query: new Set(['clients']),
  mutation: new Set(['deleteClient', 'liftTombstone']),
});

export function useAdminGuard(): Plugin<GraphqlContext> {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      if ((args.contextValue as GraphqlContext).isAdmin) return;
      const operation = getOperationAST(args.document, args.operationName);
      const adminFields = operation ? ADMIN_FIELDS[operation.operation] : undefined;
      if (operation && adminFields && selects(operation.selectionSet, adminFields, args.document, new Set())) {
        setResultAndStopExecution({
          data: null,
          errors: [userError('FORBIDDEN', 'This operation needs the admin token (Authorization: Bearer TOKEN).')],
        });
      }
    },
  };
}

/**
 * Whether a root selection reaches one of `fields`, through fragments too. @skip and @include
 * are ignored on purpose: a field that might run counts as selected.
 */
function selects(set: SelectionSetNode, fields: ReadonlySet<string>, document: DocumentNode, seen: Set<string>): boolean {
  return set.selections.some((selection) => {
    switch (selection.kind) {
      case Kind.FIELD:
        return fields.has(selection.name.value);
      case Kind.INLINE_FRAGMENT:
        return selects(selection.selectionSet, fields, document, seen);
      case Kind.FRAGMENT_SPREAD: {
        const name = selection.name.value;
        if (seen.has(name)) return false;
        seen.add(name);
        const fragment = document.definitions.find(
          (definition) => definition.kind === Kind.FRAGMENT_DEFINITION && definition.name.value === name,
        );
        return fragment?.kind === Kind.FRAGMENT_DEFINITION && selects(fragment.selectionSet, fields, document, seen);
      }
    }
  });
}
