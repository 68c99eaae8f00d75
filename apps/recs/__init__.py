"""Recommendations that follow a user's shifting interests (issue #16): MovieLens ratings
replayed through a recommender stage, served over HTTP."""
