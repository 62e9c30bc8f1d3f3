/**
 * schema.graphql contains every type, field, argument (with its type and default) and enum
 * value of the shared contract unchanged, and the server serves exactly schema.graphql.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildSchema,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  isUnionType,
  print,
  type GraphQLNamedType,
  type GraphQLSchema,
} from 'graphql';
import { describe, expect, test } from 'vitest';
import { readSchemaSource, SCHEMA_PATH } from '../../src/graphql/schema-source.js';

const repoRoot = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
// CI lays shared/ beside the clone; a developer's work tree has it one level up as well.
const contractPath = path.resolve(repoRoot, '../shared/contract.graphql');

function shape(type: GraphQLNamedType): unknown {
  if (isObjectType(type) || isInterfaceType(type)) {
    return Object.fromEntries(
      Object.values(type.getFields()).map((field) => [
        field.name,
        {
          type: String(field.type),
          args: Object.fromEntries(field.args.map((arg) => [arg.name, { type: String(arg.type), default: arg.astNode?.defaultValue ? print(arg.astNode.defaultValue) : null }])),
        },
      ]),
    );
  }
  if (isUnionType(type)) return type.getTypes().map(String);
  if (isEnumType(type)) return type.getValues().map((value) => value.name);
  if (isInputObjectType(type)) return Object.values(type.getFields()).map((field) => [field.name, String(field.type)]);
  return type.constructor.name;
}

function userTypes(schema: GraphQLSchema): GraphQLNamedType[] {
  return Object.values(schema.getTypeMap()).filter((type) => !type.name.startsWith('__'));
}

describe('schema.graphql', () => {
  test('is the file at the repository root that the server loads', () => {
    expect(SCHEMA_PATH).toBe(path.join(repoRoot, 'schema.graphql'));
    expect(readSchemaSource()).toBe(readFileSync(path.join(repoRoot, 'schema.graphql'), 'utf8'));
  });

  test.skipIf(!existsSync(contractPath))('contains every type, field and argument of the contract unchanged', () => {
    const contract = buildSchema(readFileSync(contractPath, 'utf8'));
    const ours = buildSchema(readSchemaSource());
    for (const type of userTypes(contract)) {
      const mine = ours.getType(type.name);
      expect(mine, type.name).toBeDefined();
      const contractShape = shape(type);
      const ourShape = shape(mine as GraphQLNamedType);
      if (isObjectType(type)) {
        // Ours may add fields; every contract field must be identical.
        for (const [name, field] of Object.entries(contractShape as Record<string, unknown>)) {
          expect((ourShape as Record<string, unknown>)[name], `${type.name}.${name}`).toEqual(field);
        }
      } else {
        expect(ourShape, type.name).toEqual(contractShape);
      }
    }
  });
});
