"""The DSL compiler tuned to one version's engine tables: per-class counts and attribute values
are read from precomputed columns whose names are built from integers, never from user text."""

from __future__ import annotations

from dataclasses import dataclass, field

from dsgen_core.query import Compiler


@dataclass(frozen=True)
class EngineSchema:
    """What the engine precomputed: category ids per name / supercategory, attribute column numbers."""

    by_name: dict[str, list[int]] = field(default_factory=dict)
    by_super: dict[str, list[int]] = field(default_factory=dict)
    count_columns: bool = True  # c_<category_id> columns exist on images
    attr_columns: dict[str, int] = field(default_factory=dict)  # key -> n of at_<n> / an_<n>


class EngineCompiler(Compiler):
    """Compiler for a single-version engine; subclassed per engine with `schema` set."""

    schema: EngineSchema = EngineSchema()

    def image_rows(self, table: str, alias: str) -> str:
        # The engine holds one version, so image id alone joins (a cheaper hash key).
        return f"{table} {alias} WHERE {alias}.image_id = i.image_id"

    def _category_ids(self, column: str, placeholder: str) -> list[int]:
        value = self.params[placeholder.removeprefix("$")]
        table = self.schema.by_name if column == "name" else self.schema.by_super
        return table.get(str(value), [])

    def category_exists(self, column: str, name: str) -> str:
        if not self.schema.count_columns:
            return super().category_exists(column, name)
        ids = self._category_ids(column, name)
        return "(" + " OR ".join(f"i.c_{int(c)} > 0" for c in ids) + ")" if ids else "FALSE"

    def category_count(self, column: str, name: str) -> str:
        if not self.schema.count_columns:
            return super().category_count(column, name)
        ids = self._category_ids(column, name)
        return "(" + " + ".join(f"i.c_{int(c)}" for c in ids) + ")" if ids else "0"

    def annotation_category(self, column: str, name: str) -> str:
        ids = self._category_ids(column, name)
        return f"a.category_id IN ({', '.join(str(int(c)) for c in ids)})" if ids else "FALSE"

    def attribute_text(self, key: str) -> str:
        n = self.schema.attr_columns.get(key)
        return super().attribute_text(key) if n is None else f"a.at_{int(n)}"

    def attribute_number(self, key: str) -> str:
        n = self.schema.attr_columns.get(key)
        return super().attribute_number(key) if n is None else f"a.an_{int(n)}"


def compiler_for(schema: EngineSchema) -> type[EngineCompiler]:
    return type("VersionCompiler", (EngineCompiler,), {"schema": schema})
