#include <ember/ember.h>

#include "cpu/arch/arch.h"
#include "cpu/parallel.h"

namespace ember {

const char* cpu_arch_name() { return cpu::arch().name; }
int get_num_threads() { return cpu::num_threads(); }
void set_num_threads(int n) { cpu::set_num_threads(n); }

}  // namespace ember
