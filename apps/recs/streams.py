"""The app's two streams, one partition each: a movie's popularity and neighbours are
global, so every user's ratings meet one model. Apart from app.py so that the serving
command can name them without importing the pipeline."""

from __future__ import annotations

import streamsense as ss

from .stage import Movie, Rating

interactions = ss.Stream("interactions", Rating, key="userId", time="time_ms", partitions=1)
items = ss.Stream("items", Movie, key="movieId", time="time_ms", partitions=1)
