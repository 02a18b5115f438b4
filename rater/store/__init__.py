"""The store: tables (`tables`), opening and upgrading a database (`engine`), item queries (`items`) and where a
rating is saved (`ratings`). Imports only rater.core."""
