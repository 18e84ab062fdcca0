"""Reference geography: provinces, prefectures, counties and the organisations below them."""
