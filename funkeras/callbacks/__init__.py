"""Callbacks: Keras' hooks for watching and steering `fit`."""

from funkeras.callbacks.callback import Callback, CallbackList
from funkeras.callbacks.history import History
from funkeras.callbacks.progbar import ProgbarLogger

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger"]
