/**
 * The adapter kit's public entry, `durable-backfill/warehouse`, is all an adapter imports
 * (docs/warehouses.md): every type that the interfaces it exports name, in their members'
 * parameters and results and in the types those name in turn, is exported from it too, or an
 * adapter written in TypeScript could not spell its own methods' signatures.
 */
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT } from './build-sources.ts';

/** The names a type declaration refers to that are declared in the repository, each with the declaration that refers to it. */
function repositoryTypesNamed(checker: ts.TypeChecker, declaration: ts.Node, into: Map<ts.Symbol, string>, by: string): void {
  const visit = (node: ts.Node): void => {
    if (ts.isTypeReferenceNode(node)) {
      const found = checker.getSymbolAtLocation(ts.isQualifiedName(node.typeName) ? node.typeName.right : node.typeName);
      const symbol = found && found.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(found) : found;
      const source = symbol?.declarations?.[0]?.getSourceFile();
      if (symbol && source && !source.isDeclarationFile && source.fileName.startsWith(ROOT) && !(symbol.flags & ts.SymbolFlags.TypeParameter) && !into.has(symbol)) {
        into.set(symbol, by);
        for (const d of symbol.declarations ?? []) if (ts.isInterfaceDeclaration(d) || ts.isTypeAliasDeclaration(d)) repositoryTypesNamed(checker, d, into, symbol.name);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(declaration);
}

describe('durable-backfill/warehouse', () => {
  it('exports every type its interfaces and types name (Warehouse, Dialect, Session and the rest)', () => {
    const { config } = ts.readConfigFile(join(ROOT, 'tsconfig.json'), ts.sys.readFile);
    const { options } = ts.parseJsonConfigFileContent(config, ts.sys, ROOT);
    const entry = join(ROOT, 'warehouse.ts');
    const program = ts.createProgram([entry], options);
    const checker = program.getTypeChecker();
    const exported = checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(entry)!)!);
    const names = new Set(exported.map((s) => s.name));
    expect(names).toContain('Warehouse');
    const named = new Map<ts.Symbol, string>();
    for (const symbol of exported) {
      const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
      for (const d of target.declarations ?? []) if (ts.isInterfaceDeclaration(d) || ts.isTypeAliasDeclaration(d)) repositoryTypesNamed(checker, d, named, symbol.name);
    }
    const missing = [...named].filter(([symbol]) => !names.has(symbol.name)).map(([symbol, by]) => `${symbol.name} (named by ${by})`);
    expect(missing).toEqual([]);
  }, 60_000);
});
