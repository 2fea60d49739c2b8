package main

import "github.com/gorilla/mux"

func (s *server) mountPages(r *mux.Router) {}
