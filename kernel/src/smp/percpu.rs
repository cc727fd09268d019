pub fn current_index() -> usize { 0 }
