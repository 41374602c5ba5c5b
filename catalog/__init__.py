"""The survey's taxonomy of efficient-LLM techniques as structured, searchable data (no streamlit here)."""

from catalog.core import Catalog, CatalogError, Technique, UnknownTechniqueError, load_catalog

__all__ = ["Catalog", "CatalogError", "Technique", "UnknownTechniqueError", "load_catalog"]
