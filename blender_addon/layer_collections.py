"""Importers add objects to the active collection: point it at the take's collection meanwhile."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import bpy


def _layer_collection(root: bpy.types.LayerCollection, collection: bpy.types.Collection):
    if root.collection == collection:
        return root
    for child in root.children:
        found = _layer_collection(child, collection)
        if found is not None:
            return found
    return None


@contextlib.contextmanager
def importing_into(context: bpy.types.Context, collection: bpy.types.Collection) -> Iterator[None]:
    """Make `collection` the view layer's active collection inside the block, then restore the previous one."""
    view_layer = context.view_layer
    previous = view_layer.active_layer_collection
    view_layer.active_layer_collection = _layer_collection(view_layer.layer_collection, collection)
    try:
        yield
    finally:
        view_layer.active_layer_collection = previous
