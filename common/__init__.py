"""Neutral helpers shared by the catalog, the recommender and the live demo.

`common.history` owns the run-history table (schema, reader, writer) and `common.text` the text helpers every page
uses. Nothing here imports streamlit, torch or any of the three packages, so each of them may import it without
creating a knot between them.
"""
