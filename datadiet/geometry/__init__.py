"""Geometry on the device for the embedding-based selectors: exact kNN and k-means (jit).

  knn.py     exact k nearest neighbours, chunked over query rows
  kmeans.py  Lloyd's k-means with k-means++ seeding
"""
from datadiet.geometry.kmeans import kmeans
from datadiet.geometry.knn import knn

__all__ = ["kmeans", "knn"]
